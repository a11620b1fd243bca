"""The VAE course: demonstrations as plain functions (``demos``) and the lesson's steps (``steps``)."""
