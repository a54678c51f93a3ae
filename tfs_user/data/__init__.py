"""Data pipeline: numpy files and image folders, input plans, fitting data to a model's signature."""
