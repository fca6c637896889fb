"""Image datasets: ``shapes`` (generated), ``digits`` (scikit-learn), ``folder`` (yours)."""
