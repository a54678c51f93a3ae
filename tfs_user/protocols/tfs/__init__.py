"""TF Serving's gRPC API: messages (without TensorFlow), TensorProtos, request bodies, pre-flight calls, response checks."""
