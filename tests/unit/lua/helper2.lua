return {late = true}
