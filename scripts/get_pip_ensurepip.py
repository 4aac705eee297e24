"""Stand-in for get-pip.py, used by scripts/sanity: ansible-test bootstraps pip in its
virtual environments with get-pip.py, downloaded from a host this machine cannot reach.
This installs the pip bundled with the Python running it, then what was asked for from
the package index that pip is configured with."""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
wanted = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
if wanted:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"] + wanted)
