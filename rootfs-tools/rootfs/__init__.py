"""Helpers behind the rootfs-tools commands (debian-tree, alpine-tree).

Standard library only, so the tools run on any host with Python 3.9+.
"""
