"""transcode"""
