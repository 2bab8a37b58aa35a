"""Identity: signed bearer tokens (JWT) and the roles they carry."""
