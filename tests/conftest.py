import pathlib
import sys

# Tests run against the source tree whether or not the package is installed.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
