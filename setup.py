import re

from setuptools import find_packages, setup

with open("jseg/version.py") as f:
    version = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="jseg",
    version=version,
    description="SegNeXt, SegFormer and CGRSeg in Jittor, numerically equal to the official PyTorch models",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["jseg", "jseg.*"]),
    python_requires=">=3.8",
    install_requires=[
        "jittor==1.3.11.0",
        "numpy<2",                      # Jittor 1.3.11 breaks on NumPy 2
        "pillow",
        "opencv-python>=4.5,<4.12",     # 4.12+ requires NumPy 2
        "pyyaml",
    ],
    extras_require={
        # ONNX export (python -m jseg.tools.export --format onnx); onnx 1.18+ needs NumPy 2
        "export": ["onnx>=1.14,<1.18"],
        "test": ["pytest", "scipy", "onnx>=1.14,<1.18", "onnxruntime>=1.16,<1.21"],
    },
)
