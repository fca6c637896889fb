"""Text front end: normalisation (numbers to words) and tokenisation."""
