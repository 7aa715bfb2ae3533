"""Planning tools that sit beside the balancing loop: battery sharing and hybrid-supply dimensioning."""
