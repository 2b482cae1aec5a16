"""Faces as an image task with a face stage in front: 68 landmarks (dlib or AffectNet-style files),
aligned crops, and occluders (VR headset, lower-face mask, eyes bar, random patch)."""
