"""Sample-quality metrics shared by every family.

`distances` holds the statistics (NumPy and SciPy only), `features` the feature extractors
(a digits classifier, InceptionV3), and `samples` draws a model's samples and computes the
metrics a spec asks for.
"""
