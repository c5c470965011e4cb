"""The OCPI modules: one package each, mapping between OCPI JSON and the domain's services and selectors."""
