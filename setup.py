from setuptools import find_packages, setup

MPI = ["mpi4py>=4", "mpich; sys_platform == 'linux'"]

setup(
    name="minicnn",
    version="0.1.0",
    description="A readable convolutional-network engine on NumPy (CPU) and CuPy (GPU)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["minicnn", "minicnn.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "matplotlib>=3.6",  # plots; brings Pillow (predict.py)
        # Holds BLAS to one thread inside the CPU convolutions, which split the batch over
        # the cores themselves (distributed/threads.py); without it they run, only slower.
        "threadpoolctl>=3",
    ],
    extras_require={
        # CuPy's wheels are built per CUDA major version: take the one your driver runs
        # (nvidia-smi's "CUDA Version"). "gpu" is CUDA 12's, which older drivers run too.
        "gpu": ["cupy-cuda12x>=13"],
        "cuda12": ["cupy-cuda12x>=13"],
        "cuda13": ["cupy-cuda13x>=14"],
        # Data-parallel training (minicnn/distributed/): mpi4py, and the mpich wheel as its
        # MPI library, so no system MPI is needed (an existing MPI works as well).
        "mpi": MPI,
        "test": ["pytest>=7", "hypothesis>=6", *MPI],  # the 2-rank tests run in CI too
    },
)
