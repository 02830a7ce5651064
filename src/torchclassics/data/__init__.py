"""Data sources: synthetic curves and clusters, MNIST, image folders."""
