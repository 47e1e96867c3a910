"""medharness: evaluation of vision-language models on biomedical benchmarks."""

__version__ = "0.1.0"
