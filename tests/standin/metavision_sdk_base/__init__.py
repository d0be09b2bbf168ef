"""STAND-IN for metavision_sdk_base (tests only; see tests/standin/README.md): the event dtypes."""

import numpy as np

EventCD = np.dtype({"names": ["x", "y", "p", "t"], "formats": ["<u2", "<u2", "<i2", "<i8"], "offsets": [0, 2, 4, 8],
                    "itemsize": 16})
EventExtTrigger = np.dtype({"names": ["p", "t", "id"], "formats": ["<i2", "<i8", "<i2"], "offsets": [0, 8, 16],
                            "itemsize": 24})
