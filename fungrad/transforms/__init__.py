"""The public transformations: differentiation, vectorisation, staging, jit."""
