"""What every process is configured with: ``Settings`` (``settings.py``), JSON
logging (``logging.py``) and the garbage collector's tuning (``heap.py``).

The floor of the house: every package may import it, and it imports nothing
of the project.
"""
