import os

from setuptools import find_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))


def read_version():
    about = {}
    with open(os.path.join(HERE, "metal", "_version.py")) as f:
        exec(f.read(), about)
    return about["__version__"]


def read_readme():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        return f.read()


setup(
    name="snorkel-metal",
    version=read_version(),
    description=(
        "Weak supervision with many noisy label sources: label models, "
        "noise-aware end models and multi-task learning"
    ),
    long_description=read_readme(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["metal", "metal.*"]),
    include_package_data=True,
    package_data={"metal": ["**/*.txt", "**/*.md"]},
    install_requires=[
        "torch>=2.0",
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.2",
        "pandas>=1.5",
        "tqdm>=4.60",
        "tensorboardX>=2.5",
        "networkx>=2.8",
    ],
    extras_require={
        "contrib": ["matplotlib>=3.5", "nltk>=3.9"],
        "dask": ["dask[array]>=2024.1", "distributed>=2024.1"],
        "dev": [
            "dask[array]>=2024.1",
            "distributed>=2024.1",
            "zarr>=2.16",
            "pytest>=7",
            "pynose>=1.5",
            "black>=24",
            "isort>=5.12",
            "flake8>=6",
            "matplotlib>=3.5",
            "nltk>=3.9",
            "nbclient>=0.7",
            "nbformat>=5.7",
            "ipykernel>=6",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
