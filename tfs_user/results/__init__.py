"""The results family: what a run leaves behind and how two runs compare (``compare``, ``windows``)."""
