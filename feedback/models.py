"""Human feedback: comparisons of recommendation lists and feedback on single movies."""
