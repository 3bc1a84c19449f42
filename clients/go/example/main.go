// Command example sends one batch of FP32 rows to a Conduit inference server and prints the outputs as JSON.
//
//	example --target 127.0.0.1:8001 --model credit --rows rows.csv
//	example --target 127.0.0.1:8001 --model credit --rows rows.csv \
//	    --control-plane 127.0.0.1:8100 --token "$CONDUIT_TOKEN" --alias production
//	example --target server.example:8001 --model credit --rows rows.csv --token "$CONDUIT_TOKEN" \
//	    --tls-ca ca.pem --tls-cert client.pem --tls-key client-key.pem
//
// Rows are CSV, one row per line (`-` reads stdin). With --alias, the version to call is looked up in the control plane
// first. The token (default $CONDUIT_TOKEN) goes with every call as `authorization: Bearer TOKEN`. With --tls-ca the
// inference connection uses TLS and trusts that CA (the system's roots when only --tls-cert is given); --tls-cert and
// --tls-key present a client certificate to a server that requires mutual TLS. The input travels as raw little-endian
// FP32 bytes (raw_input_contents), which costs the server no per-value decoding; outputs come back the same way in
// raw_output_contents. A failed call prints its gRPC status on stderr and exits 1.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	controlv1 "github.com/conduit-ml/conduit/clients/go/control/v1"
	"github.com/conduit-ml/conduit/clients/go/inference"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type output struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int64   `json:"shape"`
	Data     []float64 `json:"data"`
}

func fail(err error) {
	if s, ok := status.FromError(err); ok {
		fmt.Fprintf(os.Stderr, "rpc error: %s: %s\n", strings.ToUpper(toSnake(s.Code().String())), s.Message())
	} else {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
	}
	os.Exit(1)
}

// toSnake turns grpc-go's code names (InvalidArgument) into the protocol's (INVALID_ARGUMENT).
func toSnake(name string) string {
	var out strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			out.WriteByte('_')
		}
		out.WriteRune(r)
	}
	return out.String()
}

func readRows(path string) ([][]float32, error) {
	var in io.Reader = os.Stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		in = file
	}
	var rows [][]float32
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 1<<20), 1<<26)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		var row []float32
		for _, cell := range strings.Split(line, ",") {
			value, err := strconv.ParseFloat(strings.TrimSpace(cell), 32)
			if err != nil {
				return nil, err
			}
			row = append(row, float32(value))
		}
		rows = append(rows, row)
	}
	return rows, scanner.Err()
}

// encodeFP32 writes little-endian FP32, the byte order the protocol prescribes for raw contents.
func encodeFP32(rows [][]float32) []byte {
	var raw []byte
	for _, row := range rows {
		for _, value := range row {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(value))
		}
	}
	return raw
}

func decode(datatype string, raw []byte) ([]float64, error) {
	size := map[string]int{"FP32": 4, "FP64": 8, "INT32": 4, "INT64": 8}[datatype]
	if size == 0 {
		return nil, fmt.Errorf("this example does not decode %s", datatype)
	}
	values := make([]float64, 0, len(raw)/size)
	for offset := 0; offset+size <= len(raw); offset += size {
		switch datatype {
		case "FP32":
			values = append(values, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[offset:]))))
		case "FP64":
			values = append(values, math.Float64frombits(binary.LittleEndian.Uint64(raw[offset:])))
		case "INT32":
			values = append(values, float64(int32(binary.LittleEndian.Uint32(raw[offset:]))))
		default:
			values = append(values, float64(int64(binary.LittleEndian.Uint64(raw[offset:]))))
		}
	}
	return values, nil
}

// transport is plaintext, or TLS trusting caPath's certificates (the system's roots when empty) with a client
// certificate when certPath and keyPath are given.
func transport(caPath, certPath, keyPath string) (credentials.TransportCredentials, error) {
	if (certPath == "") != (keyPath == "") {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if caPath == "" && certPath == "" {
		return insecure.NewCredentials(), nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPath != "" {
		pem, err := os.ReadFile(caPath)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate", caPath)
		}
	}
	if certPath != "" {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

func resolveAlias(ctx context.Context, address, token, model, alias string) (int64, error) {
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	ref := &controlv1.VersionRef{Model: model, Selector: &controlv1.VersionRef_Alias{Alias: alias}}
	version, err := controlv1.NewControlPlaneClient(conn).GetVersion(ctx, &controlv1.GetVersionRequest{Ref: ref})
	if err != nil {
		return 0, err
	}
	return version.GetVersion(), nil
}

func main() {
	target := flag.String("target", "127.0.0.1:8001", "inference server address")
	model := flag.String("model", "", "model name")
	version := flag.String("version", "", "model version (empty: the newest)")
	input := flag.String("input", "input", "input tensor name")
	rowsPath := flag.String("rows", "-", "CSV rows (- reads stdin)")
	controlPlane := flag.String("control-plane", "", "control plane address, to resolve --alias")
	token := flag.String("token", os.Getenv("CONDUIT_TOKEN"), "bearer token, for the control plane and the server")
	alias := flag.String("alias", "", "alias to resolve to a version")
	caPath := flag.String("tls-ca", "", "PEM CA of the inference server: use TLS")
	certPath := flag.String("tls-cert", "", "PEM client certificate, for mutual TLS (with --tls-key)")
	keyPath := flag.String("tls-key", "", "PEM private key of --tls-cert")
	flag.Parse()
	if *model == "" {
		fail(fmt.Errorf("--model is required"))
	}
	creds, err := transport(*caPath, *certPath, *keyPath)
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if *alias != "" {
		resolved, err := resolveAlias(ctx, *controlPlane, *token, *model, *alias)
		if err != nil {
			fail(err)
		}
		*version = strconv.FormatInt(resolved, 10)
		fmt.Fprintf(os.Stderr, "%s@%s is version %s\n", *model, *alias, *version)
	}
	rows, err := readRows(*rowsPath)
	if err != nil {
		fail(err)
	}
	features := 0
	if len(rows) > 0 {
		features = len(rows[0])
	}
	request := &inference.ModelInferRequest{
		ModelName:    *model,
		ModelVersion: *version,
		Inputs: []*inference.ModelInferRequest_InferInputTensor{
			{Name: *input, Datatype: "FP32", Shape: []int64{int64(len(rows)), int64(features)}},
		},
		RawInputContents: [][]byte{encodeFP32(rows)},
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(creds))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	if *token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*token)
	}
	response, err := inference.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, request)
	if err != nil {
		fail(err)
	}
	result := struct {
		ModelName    string   `json:"model_name"`
		ModelVersion string   `json:"model_version"`
		Outputs      []output `json:"outputs"`
	}{response.GetModelName(), response.GetModelVersion(), nil}
	for i, tensor := range response.GetOutputs() {
		data, err := decode(tensor.GetDatatype(), response.GetRawOutputContents()[i])
		if err != nil {
			fail(err)
		}
		result.Outputs = append(result.Outputs, output{tensor.GetName(), tensor.GetDatatype(), tensor.GetShape(), data})
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fail(err)
	}
}
