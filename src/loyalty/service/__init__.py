"""Service and feedback: interactions and the customer timeline, surveys, complaint tickets, trends."""
