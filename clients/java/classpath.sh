# The jars of Debian 12's grpc-java and protobuf-java (sourced by build.sh and run.sh): compile and run time.
# apt-get install default-jdk-headless libgrpc-java libprotobuf-java libguava-java libnetty-java libperfmark-java
#   libgoogle-gson-java libgeronimo-annotation-1.3-spec-java protobuf-compiler protobuf-compiler-grpc-java-plugin
jars=(grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub protobuf guava
      perfmark-api gson geronimo-annotation-1.3-spec
      netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-common netty-handler netty-resolver
      netty-transport)
CONDUIT_JAVA_CLASSPATH=""
for jar in "${jars[@]}"; do
    CONDUIT_JAVA_CLASSPATH+="/usr/share/java/${jar}.jar:"
done
