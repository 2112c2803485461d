"""Users, API keys, cloud integrations (``models``, ``routes``), the custom-metadata schema
(``metadata_schema``) and the roles on datasets and projects (``access``)."""
