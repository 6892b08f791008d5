"""Enrichment of endpoints: offline geography (country, ASN, organisation) and scope."""
