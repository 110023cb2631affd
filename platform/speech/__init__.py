"""Timbre's framework-free speech library.

Codecs (`audio`), DSP (`dsp`), text normalisation and SSML (`text`), ASR and WER (`asr`), engines
and their cache (`engines`), watermark algorithms (`watermark`). It imports no Django and no app
(`speech/tests/test_isolation.py` enforces it) and takes its configuration as
arguments; torch, where used, is imported inside functions. The apps hold the glue.
"""
