"""The Open Inference Protocol (KServe v2 gRPC): Triton, OVMS, KServe, MLServer (``api`` is the seam)."""
