"""YouTube spam comments: loading and labeling functions for the tutorials,
tests and benchmarks.

Label convention (MeTaL): 0 = abstain, 1 = HAM (a genuine comment),
2 = SPAM. The data ships in ``tutorials/data/youtube_spam`` (see its README for
the source and licence). The first four videos are the training set, the fifth
(Shakira) is the test set.
"""

import os
import re
from typing import Callable, List, Sequence, Tuple

import numpy as np
import pandas as pd

ABSTAIN, HAM, SPAM = 0, 1, 2

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
_VIDEOS = [
    "Youtube01-Psy.csv",
    "Youtube02-KatyPerry.csv",
    "Youtube03-LMFAO.csv",
    "Youtube04-Eminem.csv",
    "Youtube05-Shakira.csv",
]


def load_spam_data(data_dir: str = DATA_DIR) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, test)`` DataFrames with columns ``text``, ``author``,
    ``video`` and ``label`` (1 = ham, 2 = spam): videos 1-4 and video 5."""
    frames = []
    for video, name in enumerate(_VIDEOS, start=1):
        df = pd.read_csv(os.path.join(data_dir, "youtube_spam", name))
        frames.append(
            pd.DataFrame(
                {
                    "text": df["CONTENT"].astype(str),
                    "author": df["AUTHOR"].astype(str),
                    "video": video,
                    "label": np.where(df["CLASS"].to_numpy() == 1, SPAM, HAM),
                }
            )
        )
    data = pd.concat(frames, ignore_index=True)
    train = data[data["video"] < 5].reset_index(drop=True)
    test = data[data["video"] == 5].reset_index(drop=True)
    return train, test


# ----------------------------------------------------------- labeling functions
def _keyword_lf(pattern: str, label: int) -> Callable[[str], int]:
    regex = re.compile(pattern, flags=re.IGNORECASE)

    def lf(text: str) -> int:
        return label if regex.search(text) else ABSTAIN

    return lf


lf_check_out = _keyword_lf(r"\bcheck\b.{0,20}\b(out|my|this)\b", SPAM)
lf_subscribe = _keyword_lf(r"\bsub(scribe|scribing|s)?\b", SPAM)
lf_link = _keyword_lf(r"https?://|www\.|\.com\b|\.ly\b", SPAM)
lf_my_channel = _keyword_lf(r"\bmy (channel|videos?|music|page|cover|song)\b", SPAM)
lf_money = _keyword_lf(
    r"\b(money|cash|earn|paypal|dollars?|\$\d+|free|gift ?card)\b", SPAM
)
lf_please = _keyword_lf(r"\bplease\b.{0,40}\b(share|like|view|visit|support)\b", SPAM)
lf_song_words = _keyword_lf(
    r"\b(song|songs|singer|voice|dance|lyrics|beat|music video)\b", HAM
)
lf_love_it = _keyword_lf(r"\b(love|like|luv)\b.{0,15}\b(this|it|her|him|song)\b", HAM)
lf_views = _keyword_lf(r"\b(views?|billion|million)\b", HAM)
lf_laugh = _keyword_lf(r"\b(lol|haha+|lmao|xd)\b", HAM)


def lf_short(text: str) -> int:
    """Very short comments are rarely spam."""
    return HAM if len(text.split()) <= 5 else ABSTAIN


def lf_long(text: str) -> int:
    """Long comments are often promotional."""
    return SPAM if len(text.split()) >= 40 else ABSTAIN


def lf_shouting(text: str) -> int:
    """Mostly upper-case text with several exclamation marks reads as spam."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 10:
        return ABSTAIN
    upper = sum(c.isupper() for c in letters) / len(letters)
    return SPAM if upper > 0.6 and text.count("!") >= 2 else ABSTAIN


LFS: List[Callable[[str], int]] = [
    lf_check_out,
    lf_subscribe,
    lf_link,
    lf_my_channel,
    lf_money,
    lf_please,
    lf_song_words,
    lf_love_it,
    lf_views,
    lf_laugh,
    lf_short,
    lf_long,
    lf_shouting,
]
LF_NAMES = [
    "check_out",
    "subscribe",
    "link",
    "my_channel",
    "money",
    "please_share",
    "song_words",
    "love_it",
    "views",
    "laugh",
    "short",
    "long",
    "shouting",
]


# The spam keyword LFs fire together on the same comments ("check out my
# channel", "subscribe to my channel", links): pairs to declare as dependencies.
CORRELATED_LFS = [
    ("check_out", "my_channel"),
    ("subscribe", "my_channel"),
    ("check_out", "link"),
    ("link", "my_channel"),
]


def lf_dependencies(lf_names: Sequence[str] = LF_NAMES) -> List[Tuple[int, int]]:
    """``CORRELATED_LFS`` as ``(i, j)`` column indices of the label matrix."""
    index = {name: i for i, name in enumerate(lf_names)}
    return [(index[a], index[b]) for a, b in CORRELATED_LFS]


def apply_lfs(texts: Sequence[str], lfs: Sequence[Callable] = LFS) -> np.ndarray:
    """The label matrix ``[n, len(lfs)]`` (int8; 0 abstain, 1 ham, 2 spam)."""
    return np.array([[lf(t) for lf in lfs] for t in texts], dtype=np.int8)
