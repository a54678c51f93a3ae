"""Wire protocols: one subpackage per API (``tfs``: TF Serving's PredictionService)."""
