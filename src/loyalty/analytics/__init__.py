"""Customer analytics: RFM, Pareto, cohorts, CLV (BG/NBD, Pareto/NBD, Gamma-Gamma), churn, lifecycle."""
