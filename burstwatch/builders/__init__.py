"""Release-time builders: the shipped conversation model (from a generated corpus, with its
measurements) and the bundled geography tables. Run as ``python -m burstwatch.builders.NAME``;
nothing at run time imports this package, so scoring never loads the capture generator.
"""
