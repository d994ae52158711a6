"""Pet Lab's engine: datasets, models, training, visualisation. Never imports streamlit."""
