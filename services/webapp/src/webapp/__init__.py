"""The customer web app of Fabrikam Drone Delivery."""
