"""Applications on top of a run session: the train/eval/collect commands, datasets recorded from
a trained run, and videos of its policy."""
