"""Application data layer: users, projects, files and thoughts."""
