"""Offline evaluation: DTW digit recogniser, MCD-mel, durations, real-time factor."""
