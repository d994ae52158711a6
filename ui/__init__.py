"""The only non-page code that imports streamlit: cached wrappers and small widget helpers."""
