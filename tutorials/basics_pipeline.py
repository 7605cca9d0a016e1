"""The main job: weak supervision end to end on the YouTube spam comments.

1. Apply labeling functions (``youtube_spam.py``) to the comments of four
   videos: the label matrix L (0 abstain, 1 ham, 2 spam).
2. Fit a LabelModel on L (no labels used) and compare it with majority vote.
3. Train an EndModel on bag-of-words features with the label model's
   probabilistic labels (a noise-aware, soft cross-entropy loss).
4. Score everything on the fifth video (Shakira), and compare with an EndModel
   trained on the gold labels.

Run: ``make tutorial`` (or ``python tutorials/basics_pipeline.py``). Takes well
under a minute on two CPU cores; prints the LF summary and a results table.
"""

import os
import sys
import tempfile
import time

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from youtube_spam import (  # noqa: E402
    LF_NAMES,
    apply_lfs,
    lf_dependencies,
    load_spam_data,
)

from metal.analysis import lf_summary  # noqa: E402
from metal.end_model import EndModel  # noqa: E402
from metal.label_model import LabelModel, MajorityLabelVoter  # noqa: E402
from metal.utils import split_data  # noqa: E402

SEED = 123


def main() -> None:
    start = time.time()
    train, test = load_spam_data()
    L_train, L_test = apply_lfs(train["text"]), apply_lfs(test["text"])
    Y_train, Y_test = train["label"].to_numpy(), test["label"].to_numpy()
    print(f"{len(train)} training comments (4 videos), {len(test)} test comments")
    print(f"{L_train.shape[1]} labeling functions; label convention 1 = ham, 2 = spam")
    print("\nLabeling functions on the training videos (gold labels used only here):")
    print(lf_summary(L_train, Y_train, lf_names=LF_NAMES).round(3).to_string())

    # A small labeled dev set (10% of the training comments) for validation.
    train_idx, dev_idx = split_data(
        np.arange(len(train)), splits=[0.9, 0.1], seed=SEED, shuffle=True
    )
    train_idx, dev_idx = np.asarray(train_idx), np.asarray(dev_idx)

    # Correlated spam LFs, declared as dependencies (see youtube_spam.py).
    label_model = LabelModel(k=2, seed=SEED, verbose=False)
    label_model.train_model(L_train, deps=lf_dependencies())
    Y_train_probs = label_model.predict_proba(L_train)

    majority_vote = MajorityLabelVoter(k=2, verbose=False)
    scores = {
        "Majority vote": expected_accuracy(majority_vote.predict_proba(L_test), Y_test),
        "Label model": expected_accuracy(label_model.predict_proba(L_test), Y_test),
    }

    vectorizer = CountVectorizer(ngram_range=(1, 2), min_df=2, binary=True)
    X_train = vectorizer.fit_transform(train["text"]).astype(np.float32).toarray()
    X_test = vectorizer.transform(test["text"]).astype(np.float32).toarray()

    # The end model learns from the items the labeling functions cover.
    covered = train_idx[(L_train[train_idx] > 0).any(axis=1)]
    dev = (X_train[dev_idx], Y_train[dev_idx])
    with tempfile.TemporaryDirectory() as checkpoint_dir:
        end_model = make_end_model(X_train.shape[1], checkpoint_dir)
        end_model.train_model(
            (X_train[covered], Y_train_probs[covered]), valid_data=dev
        )
        supervised = make_end_model(X_train.shape[1], checkpoint_dir)
        supervised.train_model((X_train[train_idx], Y_train[train_idx]), valid_data=dev)
    scores["End model (weak labels)"] = expected_accuracy(
        end_model.predict_proba(X_test), Y_test
    )
    scores["End model (gold labels)"] = expected_accuracy(
        supervised.predict_proba(X_test), Y_test
    )

    print("\nAccuracy on the test video (Shakira), ties counted as half right:")
    print(f"  {'model':<28}accuracy")
    for name, value in scores.items():
        print(f"  {name:<28}{value:.3f}")
    print(f"\nFinished in {time.time() - start:.1f} s")


def expected_accuracy(probs: np.ndarray, gold: np.ndarray) -> float:
    """Accuracy when ties between the top classes are broken at random, in
    expectation (so that a majority vote's coin flips don't add noise)."""
    top = probs >= probs.max(axis=1, keepdims=True) - 1e-5
    return float(np.mean(top[np.arange(len(gold)), gold - 1] / top.sum(axis=1)))


def make_end_model(n_features: int, checkpoint_dir: str) -> EndModel:
    return EndModel(
        [n_features, 50, 2],
        seed=SEED,
        verbose=False,
        n_epochs=20,
        lr=0.01,
        l2=1e-4,
        batch_size=64,
        checkpoint_dir=checkpoint_dir,
    )


if __name__ == "__main__":
    main()
