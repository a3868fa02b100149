"""Referrals (L13): member codes, enrolment with a code, rewards on the first qualifying purchase."""
