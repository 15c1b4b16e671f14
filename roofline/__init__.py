"""What it means: roofline bounds, the analytic estimate, economics, plots and the report."""
