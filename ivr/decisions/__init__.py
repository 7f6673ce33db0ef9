"""Pure decisions: what a caller's words mean, which line, which item. No Flask, SQL, Redis or Twilio."""
