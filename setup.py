"""The one part of vinbot written in C: `tools.domain._vehiclec`, the hot paths of `tools/domain/vehicle.py`.

Everything else is in pyproject.toml. The extension is optional: where no C compiler is found,
`pip install` warns and vinbot runs on the Python versions (the same results, more slowly;
`tools.domain.vehicle.ACCELERATED` says which). The tests require it, so CI notices a lost build.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tools.domain._vehiclec",
            sources=["tools/domain/_vehiclec.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
