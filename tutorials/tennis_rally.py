"""Tennis rally votes: labeling-function votes for frames of broadcast tennis
video (is the frame part of a rally?), shipped in ``tutorials/data/tennis_rally``
(see its README for the source and licence).

Converted to MeTaL's label convention: 1 = rally, 2 = not a rally, 0 = abstain.
"""

import os

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def load_tennis_rally(data_dir: str = DATA_DIR):
    """Tennis rally votes in MeTaL's convention (0 abstain, 1 rally, 2 not):
    ``(L_train [6959, 6], L_dev [746, 6], Y_dev [746])``."""
    folder = os.path.join(data_dir, "tennis_rally")

    def convert(a):
        a = np.asarray(a)
        return np.where(a == 1, 1, np.where(a == -1, 2, 0)).astype(np.int8)

    L_train = convert(np.load(os.path.join(folder, "L_train_video.npy")))
    L_dev = convert(np.load(os.path.join(folder, "L_dev_video.npy")))
    Y_dev = convert(np.load(os.path.join(folder, "Y_dev_video.npy"))).astype(np.int64)
    return L_train, L_dev, Y_dev
