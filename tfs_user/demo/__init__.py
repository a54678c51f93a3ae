"""The bundled demo model server (TF Serving gRPC API) and its parts: model, handlers, command line, child process."""
