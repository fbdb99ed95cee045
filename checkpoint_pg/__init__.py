"""PostgreSQL checkpoint savers for LangGraph."""
