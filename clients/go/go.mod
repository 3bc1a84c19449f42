module github.com/conduit-ml/conduit/clients/go

go 1.19

// The versions Debian 12 packages (golang-google-grpc-dev, golang-google-protobuf-dev), which the stubs are
// generated for and tested with; newer releases of both work too.
require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
