"""Writers: WAV files and mel-spectrogram pictures."""
