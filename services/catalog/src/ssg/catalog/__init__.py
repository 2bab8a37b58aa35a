"""Catalog service: solutions, knowledge products, needs and funding opportunities."""
