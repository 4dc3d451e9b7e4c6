"""``synthetic_speech``: frames whose characters a BiLSTM with a CTC head can learn to transcribe.

Each of K characters (ids 1..K; 0 is CTC's blank) has a fixed random pattern of F
features, the same for every seed (the task, like a language's sounds, does not change
with the run). An utterance of L random characters is silence (1-2 frames) before each
character, the character's pattern for 2-4 frames, and one frame of silence at the end;
every frame of the utterance gets Gaussian noise (std ``NOISE``), and frames past its
end are zero, as padded features are. ``frame_lengths`` holds each utterance's frames,
``transcript`` its characters padded with 0 to the longest transcript that fits the
input's T frames. K is one less than the classes of the output ``transcript`` is the
target of (its last axis: blank + K); without one, ``DEFAULT_CHARACTERS``.
"""

from __future__ import annotations

import numpy as np

from dsl import DataError

from .columns import Feeds
from .sequences import splits
from .sources import Source, Split

DEFAULT_CHARACTERS = 27
FRAMES, GAP, NOISE = (2, 4), (1, 2), 0.5
"""A character's frames, the silence before it (inclusive ranges), and the noise's standard deviation."""
PATTERN_SEED = 0x5BEEC


def synthetic_speech(feeds: Feeds, seed: int, train_size: int | None, test_size: int | None) -> Source:
    frames, features = feeds.input("frames").shape
    out = feeds.output("transcript")
    characters = out.shape[-1] - 1 if out is not None and out.rank else DEFAULT_CHARACTERS
    longest = (frames - 1) // (FRAMES[1] + GAP[1])
    if longest < 1 or characters < 1:
        raise DataError(f"dataset synthetic_speech needs {FRAMES[1] + GAP[1] + 1} or more frames and an output of "
                        f"2 or more classes (the blank and the characters); the input has {frames} frames and the "
                        f"output {characters + 1} classes")
    patterns = np.random.default_rng(PATTERN_SEED).standard_normal((characters + 1, features)).astype(np.float32)
    patterns[0] = 0  # silence

    def make(rng: np.random.Generator, count: int) -> Split:
        columns = {"frames": np.zeros((count, frames, features), np.float32),
                   "transcript": np.zeros((count, longest), np.int64), "frame_lengths": np.zeros(count, np.int64)}
        for row, size in enumerate(rng.integers(1, longest + 1, count)):
            text = rng.integers(1, characters + 1, size)
            sound = utterance(text, rng)
            columns["frames"][row, :len(sound)] = patterns[sound] + NOISE * rng.standard_normal(
                (len(sound), features), dtype=np.float32)
            columns["transcript"][row, :size] = text
            columns["frame_lengths"][row] = len(sound)
        return Split(columns)
    return splits(make, seed, 0x5EEC, train_size, test_size)


def utterance(text: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The character sounding at each frame (0: silence): a gap before each character, one silent frame after."""
    parts = np.stack([np.zeros_like(text), text], axis=1).ravel()
    durations = np.stack([rng.integers(GAP[0], GAP[1] + 1, len(text)),
                          rng.integers(FRAMES[0], FRAMES[1] + 1, len(text))], axis=1).ravel()
    return np.repeat(np.append(parts, 0), np.append(durations, 1))
