"""Datasets: the LJSpeech-layout reader and the embedded digits corpus."""
