"""The scoring service: the registered arrest model over HTTP (FastAPI).

    uvicorn crime_assets.serving.app:app --port 8800

``app.py`` holds the routes, ``schemas.py`` the request and response bodies, ``champion.py`` the model
being served and how it follows its alias, ``scoring.py`` records in, predictions out. The model comes
from ``crime_assets.load_model`` with the settings of ``crime_assets.common.settings`` (CRIME_SERVING_*).
"""
